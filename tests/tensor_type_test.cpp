#include <gtest/gtest.h>

#include "base/error.h"
#include "kernels/kernels.h"

namespace onellm {

TEST(TensorType, BlockGeometryMatchesGguf) {
  EXPECT_EQ(tensor_row_bytes(TensorType::Q4_0, 64), 36u);
  EXPECT_EQ(tensor_row_bytes(TensorType::Q8_0, 32), 34u);
  EXPECT_EQ(tensor_row_bytes(TensorType::Q4_K, 512), 288u);
  EXPECT_EQ(tensor_row_bytes(TensorType::Q6_K, 256), 210u);
  EXPECT_EQ(tensor_row_bytes(TensorType::F16, 3), 6u);
  EXPECT_THROW(tensor_row_bytes(TensorType::Q4_0, 33), Error);
}

TEST(TensorType, NamesRoundTrip) {
  EXPECT_EQ(tensor_type_from_name("q5_k"), TensorType::Q5_K);
  EXPECT_EQ(tensor_type_name(30), "BF16");
  EXPECT_EQ(tensor_type_name(99), "type#99");
  EXPECT_EQ(tensor_type_info(99u), nullptr);
  EXPECT_THROW(tensor_type_from_name("Q9_9"), Error);
}

}  // namespace onellm
