"""The seven lanes as Faust agents: one shared app, one module per lane."""
