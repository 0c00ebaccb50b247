"""The pre-screening questionnaire (SPEC section 3): its definition, validators and engine."""
