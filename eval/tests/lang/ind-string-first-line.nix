''  first
  second''
