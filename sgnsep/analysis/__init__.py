"""What a model hears without separating: class detection over time (`sgnsep detect`) and class embeddings of clips (`sgnsep embed`)."""
