"""The persona pattern: ``prompt_expert`` and four expert tools built on it (from the notebook)."""

from __future__ import annotations

from ..errors import AgentError, ErrorCode
from ..model.llm import LLM
from ..agent.tools import ActionContext


async def prompt_expert(action_context: ActionContext, description_of_expert: str, prompt: str) -> str:
    """Generate a response from an expert persona.

    The expert's background should be described so the answer fits their expertise.

    Args:
        description_of_expert: Detailed description of the expert's background and expertise
        prompt: The specific question or task for the expert
        action_context: Supplied by the runtime, not the model: the run's context, whose ``llm`` answers.
    """
    llm: LLM | None = action_context.get("llm")
    if llm is None:
        raise AgentError(ErrorCode.MODEL_NOT_LOADED, "No model is available to this tool")
    return await llm.generate([
        {"role": "system", "content": f"Act as the following expert and respond accordingly: {description_of_expert}"},
        {"role": "user", "content": prompt},
    ])


async def generate_technical_documentation(action_context: ActionContext, code_or_feature: str) -> str:
    """Generate technical documentation by consulting a senior technical writer.

    Args:
        code_or_feature: The code or feature to document
        action_context: Supplied by the runtime, not the model: the run's context, whose ``llm`` answers.
    """
    return await prompt_expert(
        action_context,
        "A senior technical writer with 15 years of experience in clear, precise API documentation, "
        "code examples, and documenting caveats and edge cases.",
        f"Write technical documentation for the following code or feature: an overview, how it works, "
        f"its interfaces, a usage example, and caveats.\n\n{code_or_feature}",
    )


async def design_test_suite(action_context: ActionContext, feature_description: str) -> str:
    """Design a comprehensive test suite by consulting a senior QA engineer.

    Args:
        feature_description: Description of the feature to test
        action_context: Supplied by the runtime, not the model: the run's context, whose ``llm`` answers.
    """
    return await prompt_expert(
        action_context,
        "A senior QA engineer with 12 years of experience in test strategy, unit, integration and end-to-end "
        "tests, and finding edge cases and failure modes.",
        f"Design a test suite for this feature: unit, integration and end-to-end tests, edge cases and error "
        f"conditions, with expected outcomes.\n\n{feature_description}",
    )


async def perform_code_review(action_context: ActionContext, code: str) -> str:
    """Review code and suggest improvements by consulting a senior software architect.

    Args:
        code: The code to review
        action_context: Supplied by the runtime, not the model: the run's context, whose ``llm`` answers.
    """
    return await prompt_expert(
        action_context,
        "A senior software architect with 20 years of experience in code review, design patterns, "
        "performance, security and maintainability.",
        f"Review this code. For each issue: what is wrong, why it matters, and a concrete improvement.\n\n{code}",
    )


async def write_feature_announcement(action_context: ActionContext, feature_details: str, audience: str) -> str:
    """Write a feature announcement by consulting a product marketing expert.

    Args:
        feature_details: Technical details of the feature
        audience: Target audience for the announcement (e.g., "technical", "business")
        action_context: Supplied by the runtime, not the model: the run's context, whose ``llm`` answers.
    """
    return await prompt_expert(
        action_context,
        "A senior product marketing manager with 12 years of experience turning technical features into "
        "clear value for different audiences.",
        f"Write a feature announcement for a {audience} audience: an introduction, what the feature does, its "
        f"benefits, and a call to action.\n\n{feature_details}",
    )
