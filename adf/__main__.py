from adf.cli import main

raise SystemExit(main())
