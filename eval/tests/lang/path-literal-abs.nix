[ /foo/bar /foo/../baz /a/./b ]
