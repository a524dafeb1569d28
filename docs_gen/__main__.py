from docs_gen.generate import main

raise SystemExit(main())
