(import ./data/dir).inner
