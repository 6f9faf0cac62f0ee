"""The evaluation protocol of `sgnsep eval`: mixtures from stems or solos folders, BSS Eval and SI-SDR against the mixture and oracle masks, reports."""
