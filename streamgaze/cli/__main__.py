from streamgaze.cli import main

main()
