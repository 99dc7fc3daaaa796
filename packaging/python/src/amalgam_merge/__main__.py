from amalgam_merge import main

main()
