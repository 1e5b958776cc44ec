"""The command lines (tinyengine, tinynas): parse, call the libraries, print. The only layer that imports everything."""
