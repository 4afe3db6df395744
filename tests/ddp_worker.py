"""Run under torchrun (or alone): one DeceTrainer step of a tiny GPT-2 with DeCE on the 8 rows of
test_training_trainer, then rank 0 saves the parameter update to argv[1]."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from test_training_trainer import Rows, collate, tiny_model  # noqa: E402
from transformers import TrainingArguments  # noqa: E402

from dece.losses import get_loss  # noqa: E402
from dece.training import DeceTrainer  # noqa: E402


def main(out: str, per_device_batch: int) -> None:
    torch.set_num_threads(1)
    model = tiny_model("gpt2")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = TrainingArguments(output_dir=str(Path(out).parent / "trainer"), per_device_train_batch_size=per_device_batch,
                             max_steps=1, learning_rate=0.5, lr_scheduler_type="constant", max_grad_norm=0.0,
                             train_sampling_strategy="sequential", use_cpu=True, report_to=[], save_strategy="no",
                             logging_strategy="no", disable_tqdm=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    trainer = DeceTrainer(model=model, args=args, train_dataset=Rows(False), data_collator=collate,
                          loss=get_loss("dece", alpha_base=0.9), optimizers=(optimizer, None))
    trainer.train()
    if not dist.is_initialized() or dist.get_rank() == 0:
        torch.save({n: p.detach() - before[n] for n, p in model.named_parameters()}, out)
    if dist.is_initialized():  # joins gloo's threads before exit (else a rank may abort at exit)
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
