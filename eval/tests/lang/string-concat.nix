"abc" + "def" + ""
