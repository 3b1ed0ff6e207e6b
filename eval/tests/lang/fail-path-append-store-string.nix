/tmp + "${./data/dir}"
