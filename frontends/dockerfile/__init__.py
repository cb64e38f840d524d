"""The Dockerfile frontend: text → AST (:mod:`.parser`) → typed instructions
(:mod:`.instructions`) → per-stage dispatch into the instruction graph (:mod:`.dispatch`)."""
