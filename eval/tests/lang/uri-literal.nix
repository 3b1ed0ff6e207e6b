http://example.org/foo?x=1
