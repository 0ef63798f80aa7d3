"""The pages of the app, one module each (st.navigation runs them as scripts)."""
