"""Counterfactual savings: what the old (rule-based) controller would have cost on the same recorded day."""
