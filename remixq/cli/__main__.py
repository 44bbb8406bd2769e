from remixq.cli import main

main()
