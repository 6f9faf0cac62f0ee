from sgnsep.cli.common import main

main()
