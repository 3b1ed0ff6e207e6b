with builtins; [ (isInt 1) (isFloat 1) (isFloat 1.0) (isString "") (isBool false) (isNull null) (isList []) (isAttrs {}) (isFunction map) (isPath ./.) (isFunction (x: x)) ]
