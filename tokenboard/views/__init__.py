"""What the pages show, as plain pandas frames and plotly figures.

Nothing here imports Streamlit: every number a page displays is computed by a
function that a unit test can call with a DataFrame.
"""
