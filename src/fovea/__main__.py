from fovea.cli.main import main

main()
