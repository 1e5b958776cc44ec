"""Code generation: binds the kernel registry's choices to the plan's arena offsets and writes C through
jinja2 templates (``lower``, ``emit``, ``project``); ``generate`` is the whole ``tinyengine gen`` pipeline."""
