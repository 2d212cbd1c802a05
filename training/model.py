"""The base model to fine-tune, and the model-centric options applied to it.

`--base` may be
  * `embedded` (the default): the app's embedded CTranslate2 Whisper base, converted back into
    transformers weights by training.convert — the pipeline needs no Hub at all;
  * a local CTranslate2 Whisper folder (model.bin + config.json + tokenizer.json), converted the same way;
  * a local transformers folder (config.json + weights + processor files), e.g. a previous export;
  * a Hugging Face Hub id such as openai/whisper-small (needs the network).
"""

from __future__ import annotations

import functools
from pathlib import Path

from transformers import WhisperForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutput

from app.speech.model import embedded_model_dir, is_ct2_folder, is_embedded

LORA_MODULES = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


def load_base(base: str | None):
    """(WhisperForConditionalGeneration in float32, WhisperProcessor) for `--base`."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from training.convert import ct2_to_transformers

    if is_embedded(base):
        return ct2_to_transformers(embedded_model_dir())
    path = Path(base).expanduser()
    if path.is_dir() and is_ct2_folder(path):
        return ct2_to_transformers(path)
    source = str(path) if path.is_dir() else base  # else a Hub id
    model = WhisperForConditionalGeneration.from_pretrained(source, dtype="float32")
    return model, WhisperProcessor.from_pretrained(source)


class EncoderLayerInput(BaseModelOutput):
    """Hidden states entering an encoder layer (training.encoder_cache), not yet the encoder's output."""


class WhisperFromEncoderLayer(WhisperForConditionalGeneration):
    """Whisper that also accepts `encoder_outputs=EncoderLayerInput(...)`: the cached input of encoder
    layer `first_encoder_layer`. It runs the encoder's layers from there and its final layer norm, then
    the decoder, in forward (training) as in generate (evaluation), so the top encoder layers train on
    a cache of the frozen bottom. The weights and their names are exactly Whisper's: checkpoints,
    resume and export see an ordinary WhisperForConditionalGeneration."""

    first_encoder_layer = 0

    def finish_encoder(self, encoder_outputs):
        if not isinstance(encoder_outputs, EncoderLayerInput):
            return encoder_outputs
        encoder = self.get_encoder()
        hidden = encoder_outputs.last_hidden_state
        for block in encoder.layers[self.first_encoder_layer:]:
            hidden = block(hidden, None)
        return BaseModelOutput(last_hidden_state=encoder.layer_norm(hidden))

    @functools.wraps(WhisperForConditionalGeneration.forward)  # generate() validates kwargs on the signature
    def forward(self, *args, encoder_outputs=None, **kwargs):
        return super().forward(*args, encoder_outputs=self.finish_encoder(encoder_outputs), **kwargs)

    def generate(self, *args, **kwargs):
        if "encoder_outputs" in kwargs:
            kwargs["encoder_outputs"] = self.finish_encoder(kwargs["encoder_outputs"])
        return super().generate(*args, **kwargs)

    def save_pretrained(self, *args, **kwargs):
        # Saved as the plain class, so CTranslate2's converter and from_pretrained know the folder.
        self.config.architectures = ["WhisperForConditionalGeneration"]
        self.__class__ = WhisperForConditionalGeneration
        try:
            return self.save_pretrained(*args, **kwargs)
        finally:
            self.__class__ = WhisperFromEncoderLayer


def configure(model, *, language: str | None, task: str, spec_augment: dict | None, freeze_encoder: bool,
              lora: dict | None, gradient_checkpointing: bool, freeze_decoder: bool = False,
              reentrant_checkpointing: bool = False, encoder_top_layers: int = 0,
              from_encoder_layer_input: bool = False, int8_aware: bool = False):
    """Apply the training options; returns the model to train (a PeftModel with LoRA).

    * generation: language/task forced for evaluation (the Hub's old forced_decoder_ids dropped),
      timestamps left to the caller so the exported model still emits them by default;
    * SpecAugment lives in the Whisper config (applied by the encoder in training mode only);
    * a frozen encoder keeps its weights exactly; with LoRA the adapters then go to the decoder only;
      `encoder_top_layers` N > 0 leaves its top N layers and final layer norm trainable;
    * a frozen decoder keeps the base's weights exactly (the encoder alone learns);
    * from_encoder_layer_input: the model is a WhisperFromEncoderLayer fed with the cached input of
      the first trained encoder layer (training.encoder_cache);
    * int8_aware: linear layers compute through CTranslate2's int8 rounding (training.int8_aware).
    """
    model.generation_config.language = language
    model.generation_config.task = task
    model.generation_config.forced_decoder_ids = None
    model.config.forced_decoder_ids = None
    if spec_augment:
        model.config.apply_spec_augment = True
        for key, value in spec_augment.items():
            setattr(model.config, key, value)
    if gradient_checkpointing:
        model.config.use_cache = False  # the cache is useless in training and clashes with checkpointing
    if freeze_encoder:
        model.freeze_encoder()
        encoder = model.get_encoder()
        if not 0 <= encoder_top_layers <= len(encoder.layers):
            raise SystemExit(f"error: --train-encoder-top-layers must be 0..{len(encoder.layers)}")
        if encoder_top_layers:
            for module in (*encoder.layers[len(encoder.layers) - encoder_top_layers:], encoder.layer_norm):
                for parameter in module.parameters():
                    parameter.requires_grad = True
    if freeze_decoder:
        for parameter in model.get_decoder().parameters():  # embed_tokens is the output layer's weight too
            parameter.requires_grad = False
    if from_encoder_layer_input:
        model.__class__ = WhisperFromEncoderLayer  # same weights, same modules: only forward/generate differ
        model.first_encoder_layer = len(model.get_encoder().layers) - encoder_top_layers
    if int8_aware:
        from training import int8_aware as int8

        int8.enable(model)
    if lora:
        from peft import LoraConfig, get_peft_model

        modules = lora.pop("target_modules", None) or LORA_MODULES
        # peft matches a regex against the full module name: restrict to the decoder when frozen.
        scope = r".*decoder\.layers\." if freeze_encoder else r".*layers\."
        target = scope + r"\d+\..*(" + "|".join(modules) + r")$"
        model = get_peft_model(model, LoraConfig(target_modules=target, **lora))
        if gradient_checkpointing and reentrant_checkpointing:
            # Reentrant checkpointing needs block inputs that require grad, which frozen embeddings are
            # not. Only then: the hook also hits the encoder's conv input and so backpropagates through
            # the whole frozen encoder (measured: LoRA 0.24 instead of ~0.36 samples/s on CPU).
            model.enable_input_require_grads()
    return model
