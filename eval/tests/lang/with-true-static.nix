with { true = false; }; true
