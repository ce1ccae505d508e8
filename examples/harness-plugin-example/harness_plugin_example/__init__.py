"""An example harness plugin: a preference loss (``dpo_shift``) and a method with its own pair builder
(``answer_swap``), registered through the ``harness.methods`` entry point."""
