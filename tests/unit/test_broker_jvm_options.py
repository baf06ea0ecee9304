"""The broker's JVM options come from ``NOVA_KAFKA_JVM_OPTIONS``, split like a shell."""

from __future__ import annotations

from pathlib import Path

from nova.kafka.launcher import BrokerLayout, _java_cmd
from nova.settings import load_settings


def test_the_default_stops_the_jit_at_c1_and_keeps_g1(tmp_path: Path) -> None:
    layout = BrokerLayout(home=tmp_path, port=9, controller_port=10)
    cmd = _java_cmd(tmp_path, layout, "512m", load_settings().kafka_jvm_options, "kafka.Kafka")
    assert {"-XX:+UseG1GC", "-XX:TieredStopAtLevel=1", "-Xmx512m"} <= set(cmd)
    assert cmd[-1] == "kafka.Kafka"  # the options come before the main class


def test_options_replace_the_defaults_and_keep_quoted_words_whole(tmp_path: Path) -> None:
    layout = BrokerLayout(home=tmp_path, port=9, controller_port=10)
    options = load_settings(kafka_jvm_options="-XX:+UseParallelGC '-Dnova.note=two words'")
    cmd = _java_cmd(tmp_path, layout, "1g", options.kafka_jvm_options, "kafka.Kafka")
    assert "-Dnova.note=two words" in cmd
    assert "-XX:+UseParallelGC" in cmd
    assert "-XX:TieredStopAtLevel=1" not in cmd
