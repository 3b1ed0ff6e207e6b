builtins.sort (a: b: a.k < b.k) [ {k=1; v="a";} {k=0; v="b";} {k=1; v="c";} {k=0; v="d";} ]
