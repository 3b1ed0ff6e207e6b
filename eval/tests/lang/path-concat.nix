let p = /tmp/a; in [ (p + "/b") (p + "b") (/. + "x") ]
