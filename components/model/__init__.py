"""What one stack is: the stack file's settings, the environment and its placement rules, a resolved stack, and the
Context a service plans with.
"""
