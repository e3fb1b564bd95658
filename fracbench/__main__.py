from fracbench.cli import main

raise SystemExit(main())
