;; Loops for ever: for timeouts and fuel.
(module
  (func $spin (export "_start") (loop $again (br $again))))
