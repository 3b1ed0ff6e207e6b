with builtins; [ (readFileType ./data) (readFileType ./data/hello.txt) ]
