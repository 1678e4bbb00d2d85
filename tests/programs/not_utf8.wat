;; A text module with a byte that is not UTF-8 in a comment: ÿ
(module (func (export "f")))
