;; Starts and exits at once.
(module (func (export "_start")))
