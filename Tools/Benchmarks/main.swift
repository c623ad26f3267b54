import TensorCore
print("placeholder")
