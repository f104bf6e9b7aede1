"""Save the model of a pretraining run's last checkpoint as a standard checkpoint folder, while the run goes on.

    python tools/snapshot_model.py nbs/runs/pretrain_budget      # -> nbs/runs/pretrain_budget/model/

A run that cannot finish within one sitting commits its metrics and this snapshot (config.json, model.safetensors,
vocab.txt: the weights only, not the optimiser state); running the command again resumes the run from checkpoint.pt,
and the finished run overwrites model/ with its final weights. The snapshot's step is written to model/STEP.
"""
import sys
from pathlib import Path

import torch

from bert_lit.config import BertConfig
from bert_lit.data import atomic_write
from bert_lit.pretraining import BertForPreTraining
from bert_lit.tokenizer import BertTokenizer


def snapshot(run: Path) -> int:
    state = torch.load(run / "checkpoint.pt", weights_only=True, map_location="cpu")
    model = BertForPreTraining(BertConfig.from_dict(state["run"]["model"]))
    model.load_state_dict(state["model"])
    model.save_pretrained(run / "model")
    BertTokenizer(run / "vocab.txt").save_pretrained(run / "model")
    atomic_write(run / "model" / "STEP", f"{state['step']}\n")
    return state["step"]


if __name__ == "__main__":
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / "checkpoint.pt").is_file():
        sys.exit("usage: python tools/snapshot_model.py RUN_FOLDER   (a folder holding a pretraining checkpoint.pt)")
    print(f"model of step {snapshot(Path(sys.argv[1]))} saved to {Path(sys.argv[1]) / 'model'}")
