from sgnsep.cli import main

main()
