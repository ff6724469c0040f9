from heymusic.cli import main

raise SystemExit(main())
