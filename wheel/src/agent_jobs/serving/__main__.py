"""`python -m agent_jobs.serving`: the app's command in app.yaml (the same as `serving-app`)."""

from agent_jobs.serving.cli import main

raise SystemExit(main())
