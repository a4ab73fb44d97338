"""benchmarks/profile_step.py: naming the fused kernels of a compiled program."""

from benchmarks import profile_step


def test_profile_step_names_fusions_from_hlo_text():
    """benchmarks/profile_step.py reads what each fused kernel computes from the compiled program's text, under the
    kernel name a GPU trace uses ('.' -> '_')."""
    text = (
        "ENTRY %main {\n"
        "  %input_reduce_fusion.16 = f32[512]{0} fusion(f32[1024,512]{1,0} %p), kind=kInput, calls=%fused.16, "
        'metadata={op_name="jit(chunk)/while/body/reduce_sum" source_file="/x/sscp/agents/sscp.py" source_line=118}\n'
        "  %multi = (f32[2,512]{1,0}, bf16[2,1024,512]{2,1,0}) fusion(f32[1]{0} %q), kind=kInput, "
        'metadata={op_name="jit(chunk)/while/body/eval_jaxpr/transpose(jvp(Ensemble))/LayerNorm_3/reduce_sum"}\n'
        "  ROOT %tuple.3 = (f32[]) tuple(f32[] %c)\n"
        "}\n"
    )
    found = profile_step.hlo_instructions(text)
    assert found["input_reduce_fusion_16"] == {
        "shape": "f32[512]{0}",
        "op": "fusion",
        "op_name": "jit(chunk)/while/body/reduce_sum",
        "source": "sscp.py:118",
    }
    assert found["tuple.3"]["op"] == "tuple" and found["tuple.3"]["source"] == ""
    assert found["multi"]["shape"] == "(f32[2,512]{1,0}, bf16[2,1024,512]{2,1,0})"
    assert profile_step.where("multi", found) == "transpose(jvp(Ensemble))/LayerNorm_3"
    assert profile_step.where("sm90_xmma_gemm_f32f32_tf32f32", found) == "(library GEMM)"
    assert profile_step.where("nvjet_sm90_tst_128x128_64x6_1x2_h_bz_NTT", found) == "(library GEMM)"
    kinds = ["sm90_xmma_gemm_f32f32_tf32f32", "nvjet_sm90_tst_128x128_64x6_1x2_h_bz_NTT", "gemm_fusion_dot_57"]
    kinds += ["input_reduce_fusion_16", "loop_reduce_fusion", "wrapped_concatenate_5", "input_transpose_fusion"]
    kinds += ["loop_multiply_fusion_9", "multi", "tuple.3"]
    assert [profile_step.kind(k, found) for k in kinds] == ["gemm"] * 3 + ["reduction", "reduction", "copy", "copy"] + [
        "elementwise",
        "elementwise",
        "other",
    ]
