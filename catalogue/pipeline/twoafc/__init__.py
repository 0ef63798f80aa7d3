"""The 2-AFC study's jobs (the protocol is `catalogue.twoafc`).

- `study`: building a study from a scoring run, dealing tasks, recording answers;
- `export`, `responses`: the study out in IMI's layout, responses in from IMI's format;
- `demo`: the demo's study (trials only: the demo has no participants).
"""
