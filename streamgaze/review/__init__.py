"""``streamgaze review``: verify questions with their evidence and answer them blind in a browser; verdicts and
human answers go into the store's ``reviews`` table (see docs/review.md)."""
from streamgaze.review.data import human_scores, invalid_question_ids, record_review
from streamgaze.review.server import create_app, serve

__all__ = ["create_app", "serve", "human_scores", "invalid_question_ids", "record_review"]
