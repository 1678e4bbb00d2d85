;; Validates to a type error: the body leaves nothing for the result.
(module (func (export "f") (result i32)))
