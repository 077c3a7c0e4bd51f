"""Knowledge base: search, view (counts a view), rate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from opendesk.api.deps import current_user, get_session
from opendesk.api.validation import ERROR_RESPONSES, NO_NUL
from opendesk.context import utcnow
from opendesk.models import Article, ArticleRating, User

router = APIRouter(tags=["articles"], responses=ERROR_RESPONSES)
ArticleId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _rating_summary(session: Session, article_ids: list[int]) -> dict[int, tuple[float, int]]:
    if not article_ids:
        return {}
    rows = session.execute(
        select(ArticleRating.article_id, func.avg(ArticleRating.score), func.count())
        .where(ArticleRating.article_id.in_(article_ids))
        .group_by(ArticleRating.article_id)
    )
    return {aid: (round(float(avg), 2), n) for aid, avg, n in rows}


@router.get("/articles")
def search_articles(
    q: str | None = Query(None, max_length=100, pattern=NO_NUL),
    category_id: int | None = Query(None, ge=1, le=2**31 - 1),
    page: int = Query(1, ge=1, le=10_000),
    page_size: int = Query(20, ge=1, le=100),
    _user: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> dict:
    query = select(Article)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(Article.title.ilike(pattern, escape="\\"), Article.body.ilike(pattern, escape="\\"))
        )
    if category_id is not None:
        query = query.where(Article.category_id == category_id)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    found = session.scalars(
        query.order_by(Article.view_count.desc(), Article.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    ratings = _rating_summary(session, [a.id for a in found])
    return {
        "total": total,
        "page": page,
        "items": [
            {
                "id": a.id,
                "title": a.title,
                "category_id": a.category_id,
                "view_count": a.view_count,
                "rating": ratings.get(a.id, (None, 0))[0],
                "ratings": ratings.get(a.id, (None, 0))[1],
            }
            for a in found
        ],
    }


@router.get("/articles/{article_id}")
def view_article(
    article_id: ArticleId,
    _user: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> dict:
    article = session.get(Article, article_id)
    if article is None:
        raise HTTPException(404, f"article {article_id} not found")
    session.execute(
        update(Article).where(Article.id == article_id).values(view_count=Article.view_count + 1)
    )
    session.commit()
    session.refresh(article)
    avg, count = _rating_summary(session, [article_id]).get(article_id, (None, 0))
    return {
        "id": article.id,
        "title": article.title,
        "body": article.body,
        "category": article.category.name if article.category else None,
        "author": {"id": article.author.id, "name": article.author.name},
        "tags": [t.name for t in article.tags],
        "view_count": article.view_count,
        "rating": avg,
        "ratings": count,
        "updated_at": article.updated_at,
    }


class RatingIn(BaseModel):
    score: int = Field(ge=1, le=5)


@router.post("/articles/{article_id}/ratings", status_code=201)
def rate_article(
    body: RatingIn,
    article_id: ArticleId,
    user: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> dict:
    if session.get(Article, article_id) is None:
        raise HTTPException(404, f"article {article_id} not found")
    rating = ArticleRating(
        article_id=article_id, user_id=user.id, score=body.score, created_at=utcnow()
    )
    session.add(rating)
    session.commit()
    return {"id": rating.id, "article_id": article_id, "score": rating.score}
