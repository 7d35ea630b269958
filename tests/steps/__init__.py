"""The steps of a deploy (pipeline/steps/), each tested without Docker where its logic allows."""
