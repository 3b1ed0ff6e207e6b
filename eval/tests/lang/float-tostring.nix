[ (toString 1.5) (toString 0.1) (toString 100.0) ]
