from resnet_hub.cli.app import main

main()
