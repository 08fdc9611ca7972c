from posref.cli import main

raise SystemExit(main())
