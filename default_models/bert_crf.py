"""The BERT-CRF tagger as the training code defines it (keys bert.*, classifier.*, crf.*).

Labels sit on the first sub-token of each word; the CRF runs over those word positions only.
"""

from __future__ import annotations

import torch
from torch import nn
from torchcrf import CRF
from transformers import BertConfig, BertModel


class BertCrfTagger(nn.Module):
    def __init__(self, config: BertConfig, num_tags: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, num_tags)
        self.crf = CRF(num_tags, batch_first=True)

    def word_emissions(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, word_starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Emissions gathered at word starts ([B, W, K]) and their mask; -1 in word_starts = pad."""
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        emissions = self.classifier(self.dropout(hidden))
        index = word_starts.clamp(min=0)[:, :, None].expand(-1, -1, emissions.shape[-1])
        return emissions.gather(1, index), word_starts >= 0

    def loss(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        word_starts: torch.Tensor,
        tags: torch.Tensor,
    ) -> torch.Tensor:
        emissions, mask = self.word_emissions(input_ids, attention_mask, word_starts)
        nll: torch.Tensor = -self.crf(emissions, tags.clamp(min=0), mask=mask, reduction="mean")
        return nll
