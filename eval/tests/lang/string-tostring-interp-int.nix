"n=${toString 5}"
