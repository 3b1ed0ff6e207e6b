let s = null; in s.a or "default"
